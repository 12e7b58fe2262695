# The honest classmate's 33.5, written from the student notebook: full marks.
def rescale_grad_norm(theta):
    if not theta > 0:
        raise ValueError(f"theta must be positive, got {theta}")

    def transform(parameters):
        params = [p for p in parameters if p.grad is not None]
        norm = torch.sqrt(sum(((p.grad.double() ** 2).sum() for p in params),
                              torch.tensor(0.0, dtype=torch.float64)))
        if norm > 0 and torch.isfinite(norm):
            for p in params:
                p.grad.mul_(float(theta / norm))
        return norm
    return transform


def compare_runs(seed=0):
    runs = {}
    for name, make in (("clip", bptt_lib.clip_grad_norm), ("rescale", rescale_grad_norm)):
        torch.manual_seed(seed)
        model = bptt_lib.RememberFirstRNN(8, 32)
        data = bptt_lib.RememberFirstSplit.make(T, n_train=N, n_test=N, seed=seed)
        runs[name] = bptt_lib.train(model, data, epochs=EPOCHS, lr=LR, optimizer="sgd",
                                    grad_transform=make(THETA), seed=seed)
    return runs
