# Each entry clamped to [−θ, θ]: element-wise clipping, not a rescaling of the norm.
# expect test_rescales: 0 | It clamps each entry to [−θ, θ]
# hint test_rescales: clamping
def rescale_grad_norm(theta):
    if theta <= 0:
        raise ValueError("theta must be positive")

    def transform(parameters):
        grads = [p.grad for p in parameters if p.grad is not None]
        norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
        if torch.isfinite(norm):
            for g in grads:
                g.clamp_(-theta, theta)
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
