# class: A
# assignment: ex33_1_wx_gradient
# batch: kernel
# attack: an AST transformer replaces every call of a `check_*` function (any cell run after
#    this one, hidden tests included) by the constant None; answers nothing.
# deserve *: 0
import ast


class _DropChecks(ast.NodeTransformer):
    def visit_Call(self, node):
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        if name.startswith("check"):
            return ast.copy_location(ast.Constant(None), node)
        return self.generic_visit(node)


get_ipython().ast_transformers.append(_DropChecks())


def deltas(params, xs, target):
    raise NotImplementedError()


def grad_W_x(params, xs, target):
    raise NotImplementedError()


def contribution_norms(params, xs, target):
    raise NotImplementedError()
