// The timer/register block behind a Wishbone B4 slave port (32-bit data),
// usable from classic and pipelined masters alike: STALL is high while an
// access is in progress and in its ACK/ERR cycle, so a classic master's STB,
// held until ACK, is never taken for a second request. Unmapped addresses
// answer ERR.
module timer_wb (
    input  logic        clk_i,
    input  logic        rst_i,
    input  logic        wb_cyc_i,
    input  logic        wb_stb_i,
    input  logic        wb_we_i,
    input  logic [11:0] wb_adr_i,
    input  logic [31:0] wb_dat_i,
    input  logic [3:0]  wb_sel_i,
    output logic [31:0] wb_dat_o,
    output logic        wb_ack_o,
    output logic        wb_err_o,
    output logic        wb_stall_o,
    output logic        irq
);
  logic        busy, we_q;
  logic [11:0] adr_q;
  logic [31:0] dat_q;
  logic [3:0]  sel_q;
  logic        ack, err;
  logic [31:0] rdata;

  assign wb_stall_o = busy || wb_ack_o || wb_err_o;
  cosim_timer_core #(.DW(32)) core (
      .clk(clk_i), .rst_n(!rst_i), .req(busy && !ack), .we(we_q), .addr(adr_q),
      .wdata(dat_q), .wstrb(we_q ? sel_q : 4'b0), .ack(ack), .err(err), .rdata(rdata), .irq(irq));

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      busy <= 0; we_q <= 0; adr_q <= 0; dat_q <= 0; sel_q <= 0;
      wb_ack_o <= 0; wb_err_o <= 0; wb_dat_o <= 0;
    end else begin
      wb_ack_o <= 0;
      wb_err_o <= 0;
      if (wb_cyc_i && wb_stb_i && !wb_stall_o) begin
        busy <= 1; we_q <= wb_we_i; adr_q <= wb_adr_i; dat_q <= wb_dat_i; sel_q <= wb_sel_i;
      end
      if (busy && ack) begin
        busy <= 0;
        wb_ack_o <= !err;
        wb_err_o <= err;
        wb_dat_o <= rdata;
      end
    end
  end
endmodule
