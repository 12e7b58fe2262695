# The configuration read from selfcheck.CONFIG_33_3 in a helper, keyword arguments throughout.
def protocol(hidden_size, seed, config):
    torch.manual_seed(seed)
    model = bptt_lib.RememberFirstRNN(8, hidden_size=hidden_size)
    data = bptt_lib.RememberFirstSplit.make(config["T"], n_train=config["N"],
                                            n_test=config["N"], seed=seed)
    g = bptt_lib.per_step_grad_norms(model, X=data.X_test, y=data.y_test)
    record = bptt_lib.train(model, data, epochs=config["EPOCHS"], seed=seed)
    return record, g.numpy().astype(np.float64)


def run(hidden_size, seed=0):
    return protocol(hidden_size, seed, dict(selfcheck.CONFIG_33_3))
