// The timer/register block behind an AXI4-Lite slave port with a 64-bit data
// bus. AW and W are accepted independently (each may arrive first); reads and
// writes share the core, writes first. Unmapped addresses answer SLVERR,
// addresses at or above 0x800 answer DECERR.
module timer_axil (
    input  logic        aclk,
    input  logic        aresetn,
    input  logic        s_axi_awvalid,
    output logic        s_axi_awready,
    input  logic [11:0] s_axi_awaddr,
    input  logic [2:0]  s_axi_awprot,
    input  logic        s_axi_wvalid,
    output logic        s_axi_wready,
    input  logic [63:0] s_axi_wdata,
    input  logic [7:0]  s_axi_wstrb,
    output logic        s_axi_bvalid,
    input  logic        s_axi_bready,
    output logic [1:0]  s_axi_bresp,
    input  logic        s_axi_arvalid,
    output logic        s_axi_arready,
    input  logic [11:0] s_axi_araddr,
    input  logic [2:0]  s_axi_arprot,
    output logic        s_axi_rvalid,
    input  logic        s_axi_rready,
    output logic [63:0] s_axi_rdata,
    output logic [1:0]  s_axi_rresp,
    output logic        irq
);
  logic        aw_full, w_full, ar_full;
  logic [11:0] aw_addr, ar_addr;
  logic [63:0] w_data;
  logic [7:0]  w_strb;
  logic        busy, busy_we;
  logic        ack, err;
  logic [63:0] rdata;

  wire [2:0] unused_prot = s_axi_awprot ^ s_axi_arprot;
  assign s_axi_awready = !aw_full;
  assign s_axi_wready = !w_full;
  assign s_axi_arready = !ar_full;

  wire start_w = aw_full && w_full && !busy && !s_axi_bvalid;
  wire start_r = ar_full && !busy && !s_axi_rvalid && !start_w;
  wire [11:0] core_addr = busy_we ? aw_addr : ar_addr;

  cosim_timer_core #(.DW(64)) core (
      .clk(aclk), .rst_n(aresetn), .req(busy && !ack), .we(busy_we), .addr(core_addr),
      .wdata(w_data), .wstrb(busy_we ? w_strb : 8'b0), .ack(ack), .err(err), .rdata(rdata), .irq(irq));

  function automatic logic [1:0] resp(input logic e, input logic hi);
    return e ? (hi ? 2'b11 : 2'b10) : 2'b00;
  endfunction

  always_ff @(posedge aclk or negedge aresetn) begin
    if (!aresetn) begin
      aw_full <= 0; w_full <= 0; ar_full <= 0; busy <= 0; busy_we <= 0;
      s_axi_bvalid <= 0; s_axi_bresp <= 0; s_axi_rvalid <= 0; s_axi_rresp <= 0; s_axi_rdata <= 0;
      aw_addr <= 0; ar_addr <= 0; w_data <= 0; w_strb <= 0;
    end else begin
      if (s_axi_awvalid && s_axi_awready) begin aw_full <= 1; aw_addr <= s_axi_awaddr; end
      if (s_axi_wvalid && s_axi_wready) begin w_full <= 1; w_data <= s_axi_wdata; w_strb <= s_axi_wstrb; end
      if (s_axi_arvalid && s_axi_arready) begin ar_full <= 1; ar_addr <= s_axi_araddr; end
      if (s_axi_bvalid && s_axi_bready) s_axi_bvalid <= 0;
      if (s_axi_rvalid && s_axi_rready) s_axi_rvalid <= 0;
      if (start_w) begin busy <= 1; busy_we <= 1; end
      else if (start_r) begin busy <= 1; busy_we <= 0; end
      if (busy && ack) begin
        busy <= 0;
        if (busy_we) begin
          aw_full <= 0; w_full <= 0;
          s_axi_bvalid <= 1; s_axi_bresp <= resp(err, aw_addr[11]);
        end else begin
          ar_full <= 0;
          s_axi_rvalid <= 1; s_axi_rresp <= resp(err, ar_addr[11]); s_axi_rdata <= rdata;
        end
      end
    end
  end
endmodule
