# A runner per transform, built by a closure over the factory at module level.
def rescale_grad_norm(theta):
    if theta <= 0:
        raise ValueError(f"theta must be positive, got {theta}")

    def transform(parameters):
        grads = [p.grad for p in parameters if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        if torch.isfinite(norm) and norm > 0:
            for g in grads:
                g.mul_(theta / norm)
        return norm

    return transform


def runner(make):
    def run(seed):
        torch.manual_seed(seed)
        model = bptt_lib.RememberFirstRNN(8, 32)
        data = bptt_lib.RememberFirstSplit.make(T, n_train=N, n_test=N, seed=seed)
        return bptt_lib.train(model, data, epochs=EPOCHS, lr=LR, optimizer="sgd",
                              grad_transform=make(theta=THETA), seed=seed)
    return run


RUNNERS = {"clip": runner(bptt_lib.clip_grad_norm), "rescale": runner(rescale_grad_norm)}


def compare_runs(seed=0):
    return {name: run(seed) for name, run in RUNNERS.items()}
