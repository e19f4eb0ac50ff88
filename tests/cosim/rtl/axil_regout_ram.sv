// An AXI4-Lite RAM in the registered-output style of widely used AXI
// libraries: it takes AW and W only together, and raises AWREADY, WREADY and
// BVALID at the same edge (likewise ARREADY with RVALID), so the response is
// there in the same cycle as the address handshake. Active-high reset, no
// interrupt port, a 16-bit address: every word of 64 KiB is its own cell.
module axil_regout_ram #(
    parameter int AW = 16
) (
    input  logic          clk,
    input  logic          rst,
    input  logic [AW-1:0] s_axil_awaddr,
    input  logic [2:0]    s_axil_awprot,
    input  logic          s_axil_awvalid,
    output logic          s_axil_awready,
    input  logic [31:0]   s_axil_wdata,
    input  logic [3:0]    s_axil_wstrb,
    input  logic          s_axil_wvalid,
    output logic          s_axil_wready,
    output logic [1:0]    s_axil_bresp,
    output logic          s_axil_bvalid,
    input  logic          s_axil_bready,
    input  logic [AW-1:0] s_axil_araddr,
    input  logic [2:0]    s_axil_arprot,
    input  logic          s_axil_arvalid,
    output logic          s_axil_arready,
    output logic [31:0]   s_axil_rdata,
    output logic [1:0]    s_axil_rresp,
    output logic          s_axil_rvalid,
    input  logic          s_axil_rready
);
  logic [31:0] mem[2**(AW-2)];
  wire [2:0] unused_prot = s_axil_awprot ^ s_axil_arprot;
  wire do_write = s_axil_awvalid && s_axil_wvalid && !s_axil_awready && (!s_axil_bvalid || s_axil_bready);
  wire do_read = s_axil_arvalid && !s_axil_arready && (!s_axil_rvalid || s_axil_rready);
  assign s_axil_bresp = 2'b00;
  assign s_axil_rresp = 2'b00;

  always_ff @(posedge clk) begin
    if (rst) begin
      s_axil_awready <= 0;
      s_axil_wready <= 0;
      s_axil_bvalid <= 0;
      s_axil_arready <= 0;
      s_axil_rvalid <= 0;
    end else begin
      s_axil_awready <= do_write;
      s_axil_wready <= do_write;
      if (do_write) s_axil_bvalid <= 1;
      else if (s_axil_bready) s_axil_bvalid <= 0;
      s_axil_arready <= do_read;
      if (do_read) s_axil_rvalid <= 1;
      else if (s_axil_rready) s_axil_rvalid <= 0;
    end
  end

  always_ff @(posedge clk) begin
    if (do_write)
      for (int i = 0; i < 4; i++)
        if (s_axil_wstrb[i]) mem[s_axil_awaddr[AW-1:2]][8*i+:8] <= s_axil_wdata[8*i+:8];
    if (do_read) s_axil_rdata <= mem[s_axil_araddr[AW-1:2]];
  end
endmodule
