# The factor θ/‖g‖ is computed but never applied: the gradients stay as they were.
# expect test_rescales: 0 | The gradients were not changed, neither these nor larger ones.
# hint test_rescales: unchanged
def rescale_grad_norm(theta):
    if theta <= 0:
        raise ValueError("theta must be positive")

    def transform(parameters):
        grads = [p.grad for p in parameters if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]))
        if torch.isfinite(norm) and norm > 0:
            grads = [g * (theta / norm) for g in grads]
        return norm

    return transform


def one_run(transform, seed):
    torch.manual_seed(seed)
    model = bptt_lib.RememberFirstRNN(8, 32)
    data = bptt_lib.RememberFirstSplit.make(T, n_train=N, n_test=N, seed=seed)
    return bptt_lib.train(model, data, epochs=EPOCHS, lr=LR, optimizer="sgd",
                          grad_transform=transform, seed=seed)


def compare_runs(seed=0):
    return {name: one_run(make(THETA), seed)
            for name, make in (("clip", bptt_lib.clip_grad_norm), ("rescale", rescale_grad_norm))}
