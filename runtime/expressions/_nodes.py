"""How Pebble's semantics reach compiled code, and the code generator that compiles them.

Jinja forbids new node types, so Pebble's operators are built from Jinja's own nodes:
a call to ``ImportedName("runtime.expressions._runtime.<helper>")``. Jinja imports the
helper into the compiled module, and :class:`PebbleCodeGenerator` calls it directly
(no sandbox round trip): ``equals(a, b)``. For ``??``, ``???`` and the guard used by
``is defined`` and ``| default``, the arguments are passed as ``lambda: arg`` so that
the helper decides whether, and how guardedly, to evaluate them.

The code generator also routes ``a.b`` and ``a[b]`` through the access policy with the
expression's dotted path, so a missing key is reported as ``outputs.notexists``.
"""

from __future__ import annotations

from collections.abc import Sequence

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame

from runtime.expressions._access import child_path

_RUNTIME = "runtime.expressions._runtime."
#: Helpers that receive their arguments unevaluated, as lambdas.
_LAZY_HELPERS = frozenset({"coalesce", "coalesce_undefined", "guard"})


def call(helper: str, *args: nodes.Expr, lineno: int | None = None) -> nodes.Call:
    """A call of ``_runtime.<helper>`` with ``args``."""
    target = nodes.ImportedName(_RUNTIME + helper, lineno=lineno)
    return nodes.Call(target, list(args), [], None, None, lineno=lineno)


def function(name: str, lineno: int | None = None) -> nodes.Getitem:
    """Pebble function ``name`` (from the function namespace, not the variables)."""
    table = nodes.ImportedName(_RUNTIME + "FUNCTIONS", lineno=lineno)
    return nodes.Getitem(table, nodes.Const(name, lineno=lineno), "load", lineno=lineno)


def static_path(node: nodes.Node) -> str:
    """The dotted path of a name/attribute/constant-subscript chain, else ``""``."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return child_path(static_path(node.node), node.attr)
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return child_path(static_path(node.node), node.arg.value)
    return ""


def _runtime_helper(node: nodes.Expr) -> str | None:
    if isinstance(node, nodes.ImportedName) and node.importname.startswith(_RUNTIME):
        return node.importname[len(_RUNTIME) :]
    return None


class PebbleCodeGenerator(CodeGenerator):
    """Jinja's code generator plus direct helper calls and path-aware access."""

    def visit_Call(  # noqa: N802 - Jinja's visitor naming
        self, node: nodes.Call, frame: Frame, forward_caller: bool = False
    ) -> None:
        helper = _runtime_helper(node.node)
        if helper is None:
            super().visit_Call(node, frame, forward_caller=forward_caller)
            return
        assert isinstance(node.node, nodes.ImportedName)
        self.write(self.import_aliases[node.node.importname] + "(")
        self._arguments(node.args, frame, lazy=helper in _LAZY_HELPERS)
        self.write(")")

    def visit_Getattr(self, node: nodes.Getattr, frame: Frame) -> None:  # noqa: N802
        self.write(self._helper("get_attribute") + "(")
        self.visit(node.node, frame)
        self.write(f", {node.attr!r}, {static_path(node.node)!r})")

    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:  # noqa: N802
        if _runtime_helper(node.node) is not None:
            self.visit(node.node, frame)
            self.write("[")
            self.visit(node.arg, frame)
            self.write("]")
            return
        self.write(self._helper("get_item") + "(")
        self.visit(node.node, frame)
        self.write(", ")
        if isinstance(node.arg, nodes.Slice):
            self._slice(node.arg, frame)
        else:
            self.visit(node.arg, frame)
        self.write(f", {static_path(node.node)!r})")

    def _helper(self, name: str) -> str:
        return "environment.pebble_runtime." + name

    def _slice(self, node: nodes.Slice, frame: Frame) -> None:
        self.write("slice(")
        self._arguments([node.start, node.stop, node.step], frame, lazy=False)
        self.write(")")

    def _arguments(self, args: Sequence[nodes.Expr | None], frame: Frame, *, lazy: bool) -> None:
        for index, arg in enumerate(args):
            if index:
                self.write(", ")
            if arg is None:
                self.write("None")
                continue
            self.write("(lambda: (" if lazy else "(")
            self.visit(arg, frame)
            self.write("))" if lazy else ")")
