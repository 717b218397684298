"""Hand-built IR fixtures for the runtime tests (no front end involved)."""

from __future__ import annotations

from quivers.runtime.build import BuiltModule, build_module
from quivers.runtime.ir import (
    Compose,
    FinSetT,
    KernelSource,
    LetDecl,
    ModuleIR,
    MorphismDecl,
    ProductT,
    ProgramDecl,
    Ref,
    ReturnStep,
    SampleStep,
    Scan,
    SpaceT,
)

TOKEN = FinSetT(256, name="Token")
EMBEDDED = SpaceT("real", 64, name="Embedded")
HIDDEN = SpaceT("real", 128, name="Hidden")


def real(d: int, name: str | None = None) -> SpaceT:
    return SpaceT("real", d, name=name)


def fin(n: int, name: str | None = None) -> FinSetT:
    return FinSetT(n, name=name)


def prod(*fs) -> ProductT:
    return ProductT(tuple(fs))


def ref(decl: MorphismDecl | ProgramDecl) -> Ref:
    return Ref(decl.name, decl.dom, decl.cod)


def morph(name, dom, cod, role, family=None, **kw) -> MorphismDecl:
    if "fixed" in kw and isinstance(kw["fixed"], dict):
        kw["fixed"] = tuple(kw["fixed"].items())
    return MorphismDecl(name, dom, cod, role, family, **kw)


def sample(var, expr, value_type, args=None, observed=False, is_global=False) -> SampleStep:
    return SampleStep(var, KernelSource(expr, args), value_type, observed, is_global)


def module(*morphisms, lets=(), programs=(), exports=(), algebra="product_fuzzy") -> BuiltModule:
    return build_module(
        ModuleIR(tuple(morphisms), tuple(lets), tuple(programs), tuple(exports), algebra)
    )


def reference_ir(embed: int = 64, hidden: int = 128, vocab: int = 256) -> ModuleIR:
    """Spec section 1, ``vanilla_rnn_lm``, lowered by hand."""
    token, emb, hid = fin(vocab, "Token"), real(embed, "Embedded"), real(hidden, "Hidden")
    tok_embed = morph("tok_embed", token, emb, "embed")
    cell = morph("cell", prod(emb, hid), hid, "kernel", "Normal", fixed={"scale": 0.1})
    lm_head = morph("lm_head", hid, token, "kernel", "Categorical")
    backbone = Compose(ref(tok_embed), Scan(ref(cell), emb, hid))
    prog = ProgramDecl(
        "vanilla_rnn_lm",
        token,
        token,
        (),
        (
            sample("h", Ref("backbone", token, hid), hid),
            sample("next_token", ref(lm_head), token, args=("h",), observed=True),
            ReturnStep(("next_token",)),
        ),
    )
    return ModuleIR(
        (tok_embed, cell, lm_head),
        (LetDecl("backbone", backbone),),
        (prog,),
        (("vanilla_rnn_lm", Ref("vanilla_rnn_lm", token, token)),),
    )


def reference_model(**kw):
    return build_module(reference_ir(**kw)).main
