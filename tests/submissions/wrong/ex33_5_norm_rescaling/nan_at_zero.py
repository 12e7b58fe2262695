# No guard for ‖g‖ = 0: the zero gradients become 0/0 = NaN.
# expect test_edge: 0 | all-zero gradients became NaN
def rescale_grad_norm(theta):
    if theta <= 0:
        raise ValueError(theta)

    def transform(parameters):
        grads = [p.grad for p in parameters if p.grad is not None]
        norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
        if torch.isfinite(norm):
            for g in grads:
                g.mul_(theta / norm)
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
