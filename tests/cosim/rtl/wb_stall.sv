// A Wishbone B4 slave in the Caravel style (wbs_*_i/_o names) that answers
// ACK in the same cycle as it takes a request, after STALLS cycles of STALL
// (pipelined) or of waiting (classic): with STALLS = 0, ACK comes in the
// request cycle itself. Word address port (ADR[31:2]).
//   0x0 ID RO 0x5742534c ("WBSL")   0x4 DATA RW   0x8 STALLS RW [3:0]   else ERR
module wb_stall (
    input  logic        wb_clk_i,
    input  logic        wb_rst_i,
    input  logic        wbs_cyc_i,
    input  logic        wbs_stb_i,
    input  logic        wbs_we_i,
    input  logic [31:2] wbs_adr_i,
    input  logic [31:0] wbs_dat_i,
    input  logic [3:0]  wbs_sel_i,
    output logic [31:0] wbs_dat_o,
    output logic        wbs_ack_o,
    output logic        wbs_err_o,
    output logic        wbs_stall_o
);
  logic [31:0] data;
  logic [3:0]  stalls, waited;
  wire req = wbs_cyc_i && wbs_stb_i;
  wire take = req && waited == stalls;
  wire [31:0] byte_addr = {wbs_adr_i, 2'b00};
  wire mapped = byte_addr < 32'hc && !(wbs_we_i && byte_addr == 0);
  assign wbs_stall_o = req && !take;
  assign wbs_ack_o = take && mapped;
  assign wbs_err_o = take && !mapped;
  always_comb begin
    case (byte_addr)
      32'h0: wbs_dat_o = 32'h5742534c;
      32'h4: wbs_dat_o = data;
      32'h8: wbs_dat_o = {28'd0, stalls};
      default: wbs_dat_o = 0;
    endcase
  end
  always_ff @(posedge wb_clk_i) begin
    if (wb_rst_i) begin
      data <= 0; stalls <= 0; waited <= 0;
    end else begin
      waited <= take || !req ? 0 : waited + 1;
      if (take && wbs_we_i) begin
        for (int i = 0; i < 4; i++)
          if (wbs_sel_i[i] && byte_addr == 32'h4) data[8*i+:8] <= wbs_dat_i[8*i+:8];
        if (byte_addr == 32'h8 && wbs_sel_i[0]) stalls <= wbs_dat_i[3:0];
      end
    end
  end
endmodule
