# Two passes over parameters: the second pass over a generator sees nothing.
# expect test_rescales: 0 | a generator can be iterated only once
# hint test_rescales: generator
def rescale_grad_norm(theta):
    if theta <= 0:
        raise ValueError(theta)

    def transform(parameters):
        norm = bptt_lib.grad_norm(parameters)
        if torch.isfinite(norm) and norm > 0:
            for p in parameters:
                if p.grad is not None:
                    p.grad.mul_(theta / norm)
        return norm

    return transform

def compare_runs(seed=0):
    runs = {}
    for name, transform in (("clip", bptt_lib.clip_grad_norm(THETA)),
                            ("rescale", rescale_grad_norm(THETA))):
        torch.manual_seed(seed)
        model = bptt_lib.RememberFirstRNN(8, 32)
        data = bptt_lib.RememberFirstSplit.make(T, n_train=N, n_test=N, seed=seed)
        runs[name] = bptt_lib.train(model, data, epochs=EPOCHS, lr=LR, optimizer="sgd",
                                    grad_transform=transform, seed=seed)
    return runs
