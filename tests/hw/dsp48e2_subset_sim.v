// Simulation model of the DSP48E2 subset that the calibration MAC array uses, written for
// tests/hw/test_mac_verilog_sim.py from UG579 ("UltraScale Architecture DSP Slice User
// Guide", Ch. 2: Fig. 2-1, Tables 2-1 to 2-10). Yosys 0.23 ships no DSP48E2 simulation
// model (cells_xtra.v only declares its ports); this one follows the structure of Yosys'
// DSP48E1 model in cells_sim.v. Modelled: A2/B1/B2/D/AD/M/P and the INMODE / OPMODE /
// ALUMODE / CARRYIN / CARRYINSEL registers with their clock enables and resets (an
// unconnected enable reads z and never loads, as in the Yosys model), the 27-bit pre-adder
// (PREADDINSEL = "A"), the 27 x 18 multiplier (AMULTSEL = "A" / "AD", BMULTSEL = "B") and
// the ALU as P = W + X + Y + Z with ALUMODE = 0000, X in {0, M}, Y in {0, M}, Z in {0, P},
// W = 0, CARRYIN = 0. Anything else stops the simulation with $fatal.
`timescale 1ns / 1ps
module DSP48E2 (
    output [29:0] ACOUT,
    output [17:0] BCOUT,
    output CARRYCASCOUT,
    output [3:0] CARRYOUT,
    output MULTSIGNOUT,
    output OVERFLOW,
    output reg signed [47:0] P,
    output PATTERNBDETECT,
    output PATTERNDETECT,
    output [47:0] PCOUT,
    output UNDERFLOW,
    output [7:0] XOROUT,
    input [29:0] A,
    input [29:0] ACIN,
    input [3:0] ALUMODE,
    input [17:0] B,
    input [17:0] BCIN,
    input [47:0] C,
    input CARRYCASCIN,
    input CARRYIN,
    input [2:0] CARRYINSEL,
    input CEA1, CEA2, CEAD, CEALUMODE, CEB1, CEB2, CEC, CECARRYIN, CECTRL, CED, CEINMODE,
    input CEM, CEP,
    input CLK,
    input [26:0] D,
    input [4:0] INMODE,
    input MULTSIGNIN,
    input [8:0] OPMODE,
    input [47:0] PCIN,
    input RSTA, RSTALLCARRYIN, RSTALUMODE, RSTB, RSTC, RSTCTRL, RSTD, RSTINMODE, RSTM, RSTP
);
    parameter integer ACASCREG = 1;
    parameter integer ADREG = 1;
    parameter integer ALUMODEREG = 1;
    parameter AMULTSEL = "A";
    parameter integer AREG = 1;
    parameter A_INPUT = "DIRECT";
    parameter integer BCASCREG = 1;
    parameter BMULTSEL = "B";
    parameter integer BREG = 1;
    parameter B_INPUT = "DIRECT";
    parameter integer CARRYINREG = 1;
    parameter integer CARRYINSELREG = 1;
    parameter integer CREG = 1;
    parameter integer DREG = 1;
    parameter integer INMODEREG = 1;
    parameter integer MREG = 1;
    parameter integer OPMODEREG = 1;
    parameter PREADDINSEL = "A";
    parameter integer PREG = 1;
    parameter USE_MULT = "MULTIPLY";
    parameter USE_SIMD = "ONE48";

    initial begin
        if (A_INPUT != "DIRECT" || B_INPUT != "DIRECT") $fatal(1, "only DIRECT A/B inputs");
        if (PREADDINSEL != "A") $fatal(1, "only PREADDINSEL = A is modelled");
        if (AMULTSEL != "A" && AMULTSEL != "AD") $fatal(1, "bad AMULTSEL");
        if (BMULTSEL != "B") $fatal(1, "only BMULTSEL = B is modelled");
        if (USE_MULT != "MULTIPLY" || USE_SIMD != "ONE48") $fatal(1, "only MULTIPLY / ONE48");
        if (AREG > 2 || BREG > 2 || DREG > 1 || ADREG > 1 || MREG > 1 || PREG != 1)
            $fatal(1, "unsupported register configuration (PREG must be 1)");
        if (ACASCREG > AREG || BCASCREG > BREG) $fatal(1, "A/BCASCREG above A/BREG");
    end

    assign ACOUT = 30'b0;
    assign BCOUT = 18'b0;
    assign CARRYCASCOUT = 1'b0;
    assign CARRYOUT = 4'b0;
    assign MULTSIGNOUT = 1'b0;
    assign OVERFLOW = 1'b0;
    assign UNDERFLOW = 1'b0;
    assign PATTERNBDETECT = 1'b0;
    assign PATTERNDETECT = 1'b0;
    assign PCOUT = P;
    assign XOROUT = 8'b0;

    // ---- input registers (UG579 Fig. 2-8 / 2-9: AREG/BREG = 1 uses the second register)
    reg [29:0] A1r = 0, A2r = 0;
    reg [17:0] B1r = 0, B2r = 0;
    reg [26:0] Dr = 0;
    wire [29:0] A1 = (AREG == 2) ? A1r : A;
    wire [29:0] A2 = (AREG == 0) ? A : A2r;
    wire [17:0] B1 = (BREG == 2) ? B1r : B;
    wire [17:0] B2 = (BREG == 0) ? B : B2r;
    wire [26:0] Dq = (DREG == 0) ? D : Dr;
    always @(posedge CLK) begin
        if (RSTA) begin
            A1r <= 0;
            A2r <= 0;
        end else begin
            if (CEA1) A1r <= A;
            if (CEA2) A2r <= (AREG == 2) ? A1r : A;
        end
        if (RSTB) begin
            B1r <= 0;
            B2r <= 0;
        end else begin
            if (CEB1) B1r <= B;
            if (CEB2) B2r <= (BREG == 2) ? B1r : B;
        end
        if (RSTD) Dr <= 0;
        else if (CED) Dr <= D;
    end

    // ---- control registers
    reg [4:0] INMODEr = 0;
    reg [8:0] OPMODEr = 0;
    reg [3:0] ALUMODEr = 0;
    reg [2:0] CARRYINSELr = 0;
    reg CARRYINr = 0;
    always @(posedge CLK) begin
        if (RSTINMODE) INMODEr <= 0;
        else if (CEINMODE) INMODEr <= INMODE;
        if (RSTCTRL) begin
            OPMODEr <= 0;
            CARRYINSELr <= 0;
        end else if (CECTRL) begin
            OPMODEr <= OPMODE;
            CARRYINSELr <= CARRYINSEL;
        end
        if (RSTALUMODE) ALUMODEr <= 0;
        else if (CEALUMODE) ALUMODEr <= ALUMODE;
        if (RSTALLCARRYIN) CARRYINr <= 0;
        else if (CECARRYIN) CARRYINr <= CARRYIN;
    end
    wire [4:0] inmode = INMODEREG ? INMODEr : INMODE;
    wire [8:0] opmode = OPMODEREG ? OPMODEr : OPMODE;
    wire [3:0] alumode = ALUMODEREG ? ALUMODEr : ALUMODE;
    wire [2:0] carryinsel = CARRYINSELREG ? CARRYINSELr : CARRYINSEL;
    wire carryin = CARRYINREG ? CARRYINr : CARRYIN;

    // ---- pre-adder (UG579 Table 2-5): A gated by INMODE[1], D by INMODE[2], INMODE[3] = D-A
    wire signed [26:0] a_sel = inmode[1] ? 27'sd0 : (inmode[0] ? A1[26:0] : A2[26:0]);
    wire signed [26:0] d_sel = inmode[2] ? Dq : 27'sd0;
    wire signed [26:0] ad = inmode[3] ? d_sel - a_sel : d_sel + a_sel;
    reg signed [26:0] ADr = 0;
    always @(posedge CLK)
        if (RSTD) ADr <= 0;
        else if (CEAD) ADr <= ad;
    wire signed [26:0] AD = ADREG ? ADr : ad;

    // ---- 27 x 18 multiplier
    wire signed [26:0] mult_a = (AMULTSEL == "AD") ? AD : $signed(a_sel);
    wire signed [17:0] mult_b = inmode[4] ? B1 : B2;
    wire signed [44:0] m = mult_a * mult_b;
    reg signed [44:0] Mr = 0;
    always @(posedge CLK)
        if (RSTM) Mr <= 0;
        else if (CEM) Mr <= m;
    wire signed [47:0] M = MREG ? Mr : m;

    // ---- ALU: X/Y carry the two partial products of M, summed here as one value;
    // unknown (x/z) control bits give an unknown result, known unsupported ones stop.
    reg signed [47:0] alu;
    always @* begin
        alu = 48'sd0;
        if (^{opmode, alumode, carryinsel, carryin} === 1'bx) alu = 48'bx;
        else begin
            if (alumode != 4'b0000) $fatal(1, "only ALUMODE = 0000 (Z + W + X + Y + CIN)");
            if (carryinsel != 3'b000 || carryin != 1'b0) $fatal(1, "only CARRYIN = 0");
            if (opmode[8:7] != 2'b00) $fatal(1, "only W = 0");
            case (opmode[3:0])
                4'b0000: alu = 48'sd0;
                4'b0101: alu = M;
                default: $fatal(1, "only X = Y = 0 or X = Y = M (OPMODE[3:0] = 0000 / 0101)");
            endcase
            case (opmode[6:4])
                3'b000: ;
                3'b010: alu = alu + P;
                default: $fatal(1, "only Z = 0 or Z = P");
            endcase
        end
    end
    initial P = 48'sd0;
    always @(posedge CLK)
        if (RSTP) P <= 0;
        else if (CEP) P <= alu;
endmodule
