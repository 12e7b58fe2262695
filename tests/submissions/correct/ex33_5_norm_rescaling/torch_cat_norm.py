# The norm as a 0-d tensor from one concatenated vector.
class NotPositive(ValueError):
    pass


def rescale_grad_norm(theta):
    if not (theta > 0):
        raise NotPositive(theta)

    def transform(parameters):
        with torch.no_grad():
            grads = [p.grad for p in parameters if p.grad is not None]
            if len(grads) == 0:
                return torch.zeros(())
            total = torch.cat([g.reshape(-1) for g in grads]).norm(2)
            if total.isfinite() and total != 0:
                factor = theta / total
                for g in grads:
                    g *= factor
            return total

    return transform


def compare_runs(seed=0):
    out = {}
    for key, make in [("clip", bptt_lib.clip_grad_norm), ("rescale", rescale_grad_norm)]:
        torch.manual_seed(seed)
        out[key] = bptt_lib.train(bptt_lib.RememberFirstRNN(8, 32),
                                  bptt_lib.RememberFirstSplit.make(T, n_train=N, n_test=N,
                                                                   seed=seed),
                                  epochs=EPOCHS, lr=LR, optimizer="sgd",
                                  grad_transform=make(THETA), seed=seed)
    return out
