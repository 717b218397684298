"""Every diagnostic code, with a one-line title. Codes are stable: never reuse one.

E0xxx are errors, W0xxx warnings. ``docs/language.md`` lists them, the corpus in
``tests/data/broken`` has at least one program per code, and a test keeps the three
in step.
"""

from __future__ import annotations

CODES: dict[str, str] = {
    # syntax (reported by quivers.syntax)
    "E0001": "syntax error",
    "E0002": "unexpected character",
    "E0003": "unterminated block comment",
    "E0004": "program step outside a program",
    "E0005": "construct not supported yet",
    "E0006": "keyword arguments that do not bind to the family's parameters",
    # names
    "E0101": "unknown name",
    "E0102": "name used before its declaration",
    "E0103": "name declared twice",
    "E0104": "wrong kind of name here",
    "E0105": "declaration shadows a built-in family",
    "W0106": "template parameter shadows a top-level name",
    # objects
    "E0201": "size must be a positive integer",
    "E0202": "element named twice in a finite set",
    "E0203": "a bare size as a type (the oldest spelling of FinSet N)",
    # morphisms, roles, options, families
    # E0301 (morphism without a role) is retired: no role means role=kernel
    "E0302": "unknown role",
    "E0303": "unknown option",
    "E0304": "option not read by this role or family",
    "E0305": "bad option value",
    "E0306": "unknown family",
    "E0307": "family not allowed for this role",
    "E0308": "family support does not match the codomain",
    "E0309": "domain or codomain not allowed for this role",
    "E0310": "kernel between non-finite objects needs a family",
    "E0311": "observed morphism needs a fixed relation",
    "E0312": "option given twice",
    "E0313": "fixed family parameter out of its range",
    "E0314": "matrix does not fit the morphism",
    "E0315": "kernel family parameter that must be fixed is not",
    # expressions and combinators
    "E0401": "composition of mismatched types",
    "E0402": "fan parts with different domains",
    "E0403": "repeat or stack of a morphism that is not an endomorphism",
    "E0404": "scan cell is not of the form A * H -> H",
    "E0405": "count must be a positive integer",
    "E0406": "fan of one morphism without replicate",
    "E0407": "application outside a program step",
    # programs
    "E0501": "parameter names do not match the domain's factors",
    "E0502": "unbound variable",
    "E0503": "arguments do not match the morphism's domain",
    "E0504": "wrong number of family arguments",
    "E0505": "annotation does not match the value's type",
    "E0506": "variable bound twice in a program",
    "E0507": "program without a return",
    "E0508": "returned value does not match the codomain",
    "E0509": "step after return",
    "E0510": "unknown arithmetic function",
    "E0511": "arithmetic on values of different dimensions",
    "E0512": "arithmetic on a finite-set value",
    "E0513": "step source is not a morphism or family",
    "E0514": "program input does not match the morphism's domain",
    "E0515": "inline family argument of the wrong kind",
    "E0516": "program without steps",
    "E0517": "indexing a value that is not a plate, or with ids of another set",
    "E0518": "plate values over different finite sets",
    "E0519": "template program used without its parameters",
    "E0530": "a tuple of names that does not match the draw's factors",
    "E0531": "a list argument that does not fit its parameter",
    "E0532": "a Mixture component of another support or shape",
    # marginalisation (docs/language.md, "Marginalisation")
    "E0540": "marginalized latent is not discrete",
    "E0541": "step not allowed inside a marginalize body",
    "E0542": "summed-out value used outside its marginalize block",
    "E0543": "bad marginalize option",
    "E0544": "marginalize block without a body",
    "E0545": "forward cell or forward scan used where it cannot be summed exactly",
    # exports
    "E0602": "export of something that is not a morphism",
    "W0601": "file has no export",
    "W0603": "name exported twice",
    # deductions
    "E0801": "unknown atom in a deduction",
    "E0802": "conclusion variable not bound by a premise",
    "E0803": "constructor used with different arities",
    "E0804": "start symbol not derivable",
    "E0805": "bad deduction option",
    "E0806": "atom or rule declared twice",
    "E0807": "variable where a constant is needed",
    "E0808": "deduction without a finite, exact chart (a cycle, or too large)",
    # algebra
    "E0701": "unknown algebra",
    "E0702": "algebra selected twice",
}
