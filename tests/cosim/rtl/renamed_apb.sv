// An APB slave with its own port names, no PREADY/PSTRB/PSLVERR (APB2/APB3
// style), an active-high reset and a two-line interrupt vector: exercises
// coreio_add_cosim()'s SIGNALS mapping, optional ports, RESET_ACTIVE and IRQS.
//   0x0 ID RO 0x52454e41 ("RENA")   0x4 DATA RW   0x8 EVENTS RW [1:0] drive `events`
module renamed_apb (
    input  logic        clock,
    input  logic        reset,
    input  logic        sel,
    input  logic        en,
    input  logic        wr,
    input  logic [7:0]  addr,
    input  logic [31:0] wdata,
    output logic [31:0] rdata,
    output logic [1:0]  events
);
  logic [31:0] data;
  always_comb begin
    case (addr)
      8'h0: rdata = 32'h52454e41;
      8'h4: rdata = data;
      8'h8: rdata = {30'd0, events};
      default: rdata = 32'd0;
    endcase
  end
  always_ff @(posedge clock) begin
    if (reset) begin
      data <= 0;
      events <= 0;
    end else if (sel && en && wr) begin
      if (addr == 8'h4) data <= wdata;
      if (addr == 8'h8) events <= wdata[1:0];
    end
  end
endmodule
