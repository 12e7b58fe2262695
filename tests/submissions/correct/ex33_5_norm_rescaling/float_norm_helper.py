# The norm as a Python float (sum of squares); compare_runs through a helper.
import math


def rescale_grad_norm(theta):
    if theta <= 0:
        raise ValueError("theta must be > 0")

    def transform(parameters):
        grads = [p.grad for p in list(parameters) if p.grad is not None]
        norm = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))
        if norm == 0 or not math.isfinite(norm):
            return norm
        for g in grads:
            g.mul_(theta / norm)
        return norm

    return transform


def one_run(transform, seed):
    torch.manual_seed(seed)
    model = bptt_lib.RememberFirstRNN(8, 32)
    data = bptt_lib.RememberFirstSplit.make(T, n_train=N, n_test=N, seed=seed)
    return bptt_lib.train(model, data, epochs=EPOCHS, lr=LR, optimizer="sgd",
                          grad_transform=transform, seed=seed)


def compare_runs(seed=0):
    return {"clip": one_run(bptt_lib.clip_grad_norm(THETA), seed),
            "rescale": one_run(rescale_grad_norm(THETA), seed)}
