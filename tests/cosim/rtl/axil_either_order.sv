// An AXI4-Lite register block that takes AW and W one after the other, in
// the order and with the gap its ORDER register asks for, and answers B the
// cycle after it has both.
//   0x0 ID RO 0x45495448 ("EITH")   0x4 DATA RW
//   0x8 ORDER RW: [0] 1 = AW first, 0 = W first; [7:4] cycles between the two
// irq is DATA[31].
module axil_either_order (
    input  logic        aclk,
    input  logic        aresetn,
    input  logic        s_axi_awvalid,
    output logic        s_axi_awready,
    input  logic [11:0] s_axi_awaddr,
    input  logic        s_axi_wvalid,
    output logic        s_axi_wready,
    input  logic [31:0] s_axi_wdata,
    input  logic [3:0]  s_axi_wstrb,
    output logic        s_axi_bvalid,
    input  logic        s_axi_bready,
    output logic [1:0]  s_axi_bresp,
    input  logic        s_axi_arvalid,
    output logic        s_axi_arready,
    input  logic [11:0] s_axi_araddr,
    output logic        s_axi_rvalid,
    input  logic        s_axi_rready,
    output logic [31:0] s_axi_rdata,
    output logic [1:0]  s_axi_rresp,
    output logic        irq
);
  logic [31:0] data, order;
  logic        aw_full, w_full;
  logic [11:0] aw_addr;
  logic [31:0] w_data;
  logic [3:0]  w_strb, gap;
  wire aw_first = order[0];
  wire aw_turn = aw_first || (w_full && gap == 0);
  wire w_turn = !aw_first || (aw_full && gap == 0);
  assign s_axi_awready = !aw_full && aw_turn && !s_axi_bvalid;
  assign s_axi_wready = !w_full && w_turn && !s_axi_bvalid;
  assign s_axi_arready = !s_axi_rvalid;
  assign irq = data[31];

  function automatic logic [31:0] merge(input logic [31:0] old, input logic [31:0] d, input logic [3:0] s);
    for (int i = 0; i < 4; i++) if (s[i]) old[8*i+:8] = d[8*i+:8];
    return old;
  endfunction

  always_ff @(posedge aclk) begin
    if (!aresetn) begin
      aw_full <= 0; w_full <= 0; gap <= 0; data <= 0; order <= 0;
      s_axi_bvalid <= 0; s_axi_bresp <= 0; s_axi_rvalid <= 0; s_axi_rresp <= 0; s_axi_rdata <= 0;
    end else begin
      if (gap != 0) gap <= gap - 1;
      if (s_axi_awvalid && s_axi_awready) begin aw_full <= 1; aw_addr <= s_axi_awaddr; gap <= order[7:4]; end
      if (s_axi_wvalid && s_axi_wready) begin w_full <= 1; w_data <= s_axi_wdata; w_strb <= s_axi_wstrb; gap <= order[7:4]; end
      if (aw_full && w_full && !s_axi_bvalid) begin
        aw_full <= 0; w_full <= 0; s_axi_bvalid <= 1; s_axi_bresp <= 2'b00;
        case (aw_addr)
          12'h4: data <= merge(data, w_data, w_strb);
          12'h8: order <= merge(order, w_data, w_strb);
          default: s_axi_bresp <= 2'b10;
        endcase
      end
      if (s_axi_bvalid && s_axi_bready) s_axi_bvalid <= 0;
      if (s_axi_arvalid && s_axi_arready) begin
        s_axi_rvalid <= 1; s_axi_rresp <= 2'b00;
        case (s_axi_araddr)
          12'h0: s_axi_rdata <= 32'h45495448;
          12'h4: s_axi_rdata <= data;
          12'h8: s_axi_rdata <= order;
          default: begin s_axi_rdata <= 0; s_axi_rresp <= 2'b10; end
        endcase
      end
      if (s_axi_rvalid && s_axi_rready) s_axi_rvalid <= 0;
    end
  end
endmodule
