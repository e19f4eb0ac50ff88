// A small APB slave with a width mismatch Verilator warns about (WIDTH):
// the helper must show the warning at build time and fail unless the user
// waives it in VERILATOR_ARGS.
module lint_warning (
    input  logic        PCLK,
    input  logic        PRESETn,
    input  logic        PSEL,
    input  logic        PENABLE,
    input  logic        PWRITE,
    input  logic [11:0] PADDR,
    input  logic [31:0] PWDATA,
    output logic [31:0] PRDATA
);
  logic [7:0] data;
  always_ff @(posedge PCLK) begin
    if (!PRESETn) data <= 0;
    else if (PSEL && PENABLE && PWRITE && PADDR == 0) data <= PWDATA;  // 32 bits into 8
  end
  assign PRDATA = {24'd0, data};
endmodule
