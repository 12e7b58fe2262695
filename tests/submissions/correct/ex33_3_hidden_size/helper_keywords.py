# A set-up helper, keyword arguments, grad_norms as a NumPy array.
def _setup(hidden_size, seed):
    torch.manual_seed(seed)
    model = bptt_lib.RememberFirstRNN(n_classes=8, hidden_size=hidden_size)
    return model, bptt_lib.RememberFirstSplit.make(T, n_train=N, n_test=N, seed=seed)


def run(hidden_size, seed=0):
    model, data = _setup(hidden_size, seed)
    g = np.asarray(bptt_lib.per_step_grad_norms(model, data.X_test, data.y_test), dtype=float)
    rec = bptt_lib.train(model=model, data=data, epochs=EPOCHS, seed=seed)
    return (rec, g)
