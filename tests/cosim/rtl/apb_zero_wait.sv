// An APB3 slave with PREADY tied high (no wait states ever), combinational
// read data and PSLVERR, lower-case port names, an active-high reset and a
// 16-bit address with a register at 0xFF08 (no aliasing of 0x0F08).
// pulse is a one-cycle interrupt: PULSE = N fires it N cycles after the write.
//   0x0000 ID RO 0x5a45524f ("ZERO")   0x0004 DATA RW   0x0008 PULSE WO
//   0xFF08 HIGH RW                    anything else: PSLVERR
module apb_zero_wait (
    input  logic        pclk,
    input  logic        rst,
    input  logic        psel,
    input  logic        penable,
    input  logic        pwrite,
    input  logic [15:0] paddr,
    input  logic [31:0] pwdata,
    output logic [31:0] prdata,
    output logic        pready,
    output logic        pslverr,
    output logic        pulse
);
  logic [31:0] data, high, delay;
  logic        armed;
  assign pready = 1'b1;
  always_comb begin
    pslverr = 0;
    case (paddr)
      16'h0000: prdata = 32'h5a45524f;
      16'h0004: prdata = data;
      16'hff08: prdata = high;
      default: begin
        prdata = 0;
        pslverr = !(pwrite && paddr == 16'h0008);
      end
    endcase
  end
  always_ff @(posedge pclk) begin
    if (rst) begin
      data <= 0; high <= 0; armed <= 0; delay <= 0; pulse <= 0;
    end else begin
      pulse <= 0;
      if (armed) begin
        if (delay <= 1) begin pulse <= 1; armed <= 0; end
        delay <= delay - 1;
      end
      if (psel && penable && pwrite) begin
        if (paddr == 16'h0004) data <= pwdata;
        if (paddr == 16'hff08) high <= pwdata;
        if (paddr == 16'h0008) begin armed <= 1; delay <= pwdata; end
      end
    end
  end
endmodule
