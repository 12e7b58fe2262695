# Clipping instead of rescaling, and compare_runs through a module-level table: the one bug
# costs test_rescales only (compare_runs is graded with a stand-in reached through the table).
# expect test_rescales: 0 | that is clipping
# hint test_rescales: clipping
def rescale_grad_norm(theta):
    if theta <= 0:
        raise ValueError(theta)

    def transform(parameters):
        grads = [p.grad for p in parameters if p.grad is not None]
        norm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
        if torch.isfinite(norm) and norm > theta:
            for g in grads:
                g.mul_(theta / norm)
        return norm

    return transform


TRANSFORMS = {"clip": bptt_lib.clip_grad_norm, "rescale": rescale_grad_norm}


def one_run(transform, seed):
    torch.manual_seed(seed)
    model = bptt_lib.RememberFirstRNN(8, 32)
    data = bptt_lib.RememberFirstSplit.make(T, n_train=N, n_test=N, seed=seed)
    return bptt_lib.train(model, data, epochs=EPOCHS, lr=LR, optimizer="sgd",
                          grad_transform=transform, seed=seed)


def compare_runs(seed=0):
    return {name: one_run(make(THETA), seed) for name, make in TRANSFORMS.items()}
