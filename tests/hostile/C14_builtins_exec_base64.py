# class: C
# assignment: ex33_4_manual_bptt
# batch: method
# attack: the backward pass hidden from the source: builtins.exec of base64 text (issue 23).
#    The hidden text is an honest pass; the source shows code made at run time: held.
# deserve *: 0
# deserve test_forward: full
# held: test_W_y test_h test_W_h test_W_x test_b_h
import base64
import builtins

def forward(params, xs):
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.array(hs)


_HIDDEN = (
    "ZGVmIGJhY2t3YXJkKHBhcmFtcywgeHMsIGhzLCB0YXJnZXQpOgogICAgVCA9IGxlbih4cykKICAgIHkgPSBwYXJh"
    "bXNbIldfeSJdIEAgaHNbVF0gKyBwYXJhbXNbImJfeSJdCiAgICBkeSA9IG5wLmV4cCh5IC0geS5tYXgoKSkKICAg"
    "IGR5IC89IGR5LnN1bSgpCiAgICBkeVt0YXJnZXRdIC09IDEKICAgIGcgPSB7azogbnAuemVyb3NfbGlrZShwYXJh"
    "bXNba10pIGZvciBrIGluICgiV194IiwgIldfaCIsICJiX2giKX0KICAgIGdbIldfeSJdLCBnWyJiX3kiXSA9IG5w"
    "Lm91dGVyKGR5LCBoc1tUXSksIGR5CiAgICBnWyJoIl0gPSBucC56ZXJvcygoVCwgbGVuKHBhcmFtc1siYl9oIl0p"
    "KSkKICAgIGQgPSBwYXJhbXNbIldfeSJdLlQgQCBkeQogICAgZm9yIHQgaW4gcmFuZ2UoVCwgMCwgLTEpOgogICAg"
    "ICAgIGdbImgiXVt0IC0gMV0gPSBkCiAgICAgICAgZHogPSBkICogKDEgLSBoc1t0XSAqKiAyKQogICAgICAgIGdb"
    "IldfaCJdICs9IG5wLm91dGVyKGR6LCBoc1t0IC0gMV0pCiAgICAgICAgZ1siV194Il0gKz0gbnAub3V0ZXIoZHos"
    "IHhzW3QgLSAxXSkKICAgICAgICBnWyJiX2giXSArPSBkegogICAgICAgIGQgPSBwYXJhbXNbIldfaCJdLlQgQCBk"
    "egogICAgcmV0dXJuIGcK"
)
builtins.exec(base64.b64decode(_HIDDEN).decode(), globals())
