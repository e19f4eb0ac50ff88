// axil_regout_ram behind a register slice on all five channels (VALID, READY
// and payload all registered, with a skid buffer), as a design looks after
// an interconnect adds pipeline stages. Upper-case port names, active-low
// reset, no interrupt port.
module axil_skid #(
    parameter int W = 1
) (
    input  logic         clk,
    input  logic         rst,
    input  logic         s_valid,
    output logic         s_ready,
    input  logic [W-1:0] s_data,
    output logic         m_valid,
    input  logic         m_ready,
    output logic [W-1:0] m_data
);
  logic [W-1:0] skid;
  logic         skid_valid;
  assign s_ready = !skid_valid;
  always_ff @(posedge clk) begin
    if (rst) begin
      m_valid <= 0;
      skid_valid <= 0;
    end else if (m_ready || !m_valid) begin
      if (skid_valid) begin
        m_data <= skid;
        m_valid <= 1;
        skid_valid <= 0;
      end else begin
        m_data <= s_data;
        m_valid <= s_valid;
      end
    end else if (s_valid && s_ready) begin
      skid <= s_data;
      skid_valid <= 1;
    end
  end
endmodule

module axil_sliced (
    input  logic        ACLK,
    input  logic        ARESETN,
    input  logic [15:0] S_AXIL_AWADDR,
    input  logic        S_AXIL_AWVALID,
    output logic        S_AXIL_AWREADY,
    input  logic [31:0] S_AXIL_WDATA,
    input  logic [3:0]  S_AXIL_WSTRB,
    input  logic        S_AXIL_WVALID,
    output logic        S_AXIL_WREADY,
    output logic [1:0]  S_AXIL_BRESP,
    output logic        S_AXIL_BVALID,
    input  logic        S_AXIL_BREADY,
    input  logic [15:0] S_AXIL_ARADDR,
    input  logic        S_AXIL_ARVALID,
    output logic        S_AXIL_ARREADY,
    output logic [31:0] S_AXIL_RDATA,
    output logic [1:0]  S_AXIL_RRESP,
    output logic        S_AXIL_RVALID,
    input  logic        S_AXIL_RREADY
);
  wire rst = !ARESETN;
  logic [15:0] awaddr, araddr;
  logic [31:0] wdata, rdata;
  logic [3:0] wstrb;
  logic [1:0] bresp, rresp;
  logic awvalid, awready, wvalid, wready, bvalid, bready, arvalid, arready, rvalid, rready;

  axil_skid #(16) aw (ACLK, rst, S_AXIL_AWVALID, S_AXIL_AWREADY, S_AXIL_AWADDR, awvalid, awready, awaddr);
  axil_skid #(36) w (ACLK, rst, S_AXIL_WVALID, S_AXIL_WREADY, {S_AXIL_WSTRB, S_AXIL_WDATA}, wvalid, wready,
                     {wstrb, wdata});
  axil_skid #(2) b (ACLK, rst, bvalid, bready, bresp, S_AXIL_BVALID, S_AXIL_BREADY, S_AXIL_BRESP);
  axil_skid #(16) ar (ACLK, rst, S_AXIL_ARVALID, S_AXIL_ARREADY, S_AXIL_ARADDR, arvalid, arready, araddr);
  axil_skid #(34) r (ACLK, rst, rvalid, rready, {rresp, rdata}, S_AXIL_RVALID, S_AXIL_RREADY,
                     {S_AXIL_RRESP, S_AXIL_RDATA});

  axil_regout_ram #(.AW(16)) ram (
      .clk(ACLK), .rst(rst),
      .s_axil_awaddr(awaddr), .s_axil_awprot(3'b0), .s_axil_awvalid(awvalid), .s_axil_awready(awready),
      .s_axil_wdata(wdata), .s_axil_wstrb(wstrb), .s_axil_wvalid(wvalid), .s_axil_wready(wready),
      .s_axil_bresp(bresp), .s_axil_bvalid(bvalid), .s_axil_bready(bready),
      .s_axil_araddr(araddr), .s_axil_arprot(3'b0), .s_axil_arvalid(arvalid), .s_axil_arready(arready),
      .s_axil_rdata(rdata), .s_axil_rresp(rresp), .s_axil_rvalid(rvalid), .s_axil_rready(rready));
endmodule
