// The timer/register block behind an APB4 slave port (32-bit data).
// PREADY follows the core's ack, so WAIT adds APB wait states; unmapped
// addresses answer with PSLVERR.
module timer_apb (
    input  logic        PCLK,
    input  logic        PRESETn,
    input  logic        PSEL,
    input  logic        PENABLE,
    input  logic        PWRITE,
    input  logic [11:0] PADDR,
    input  logic [31:0] PWDATA,
    input  logic [3:0]  PSTRB,
    output logic [31:0] PRDATA,
    output logic        PREADY,
    output logic        PSLVERR,
    output logic        irq
);
  logic ack, err;
  logic [31:0] rdata;
  logic [31:0] rdata_q;
  cosim_timer_core #(.DW(32)) core (
      .clk(PCLK), .rst_n(PRESETn), .req(PSEL && PENABLE && !ack), .we(PWRITE), .addr(PADDR),
      .wdata(PWDATA), .wstrb(PWRITE ? PSTRB : 4'b0), .ack(ack), .err(err), .rdata(rdata), .irq(irq));
  // Register read data at the accepting edge so PRDATA is stable in the ack cycle.
  always_ff @(posedge PCLK) if (PSEL && PENABLE && !ack) rdata_q <= rdata;
  assign PREADY = ack;
  assign PSLVERR = ack && err;
  assign PRDATA = rdata_q;
endmodule
