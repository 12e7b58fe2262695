# Two passes over a generator (the second sees nothing), and compare_runs through
# functools.partial: only test_rescales pays.
# expect test_rescales: 0 | a generator can be iterated only once
# hint test_rescales: generator
import functools


def rescale_grad_norm(theta):
    if theta <= 0:
        raise ValueError(theta)

    def transform(parameters):
        norm = torch.sqrt(sum((p.grad ** 2).sum() for p in parameters if p.grad is not None))
        if torch.isfinite(norm) and norm > 0:
            for p in parameters:
                if p.grad is not None:
                    p.grad.mul_(theta / norm)
        return norm

    return transform


def run_with(make, seed):
    torch.manual_seed(seed)
    model = bptt_lib.RememberFirstRNN(8, 32)
    data = bptt_lib.RememberFirstSplit.make(T, n_train=N, n_test=N, seed=seed)
    return bptt_lib.train(model, data, epochs=EPOCHS, lr=LR, optimizer="sgd",
                          grad_transform=make(THETA), seed=seed)


RUNS = {"clip": functools.partial(run_with, bptt_lib.clip_grad_norm),
        "rescale": functools.partial(run_with, rescale_grad_norm)}


def compare_runs(seed=0):
    return {name: run(seed) for name, run in RUNS.items()}
