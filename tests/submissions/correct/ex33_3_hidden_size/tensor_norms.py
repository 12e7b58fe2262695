# grad_norms returned as the torch tensor per_step_grad_norms gives.
def run(hidden_size, seed=0):
    torch.manual_seed(seed)
    net = bptt_lib.RememberFirstRNN(8, hidden_size)
    split = bptt_lib.RememberFirstSplit.make(T, n_train=N, n_test=N, seed=seed)
    norms = bptt_lib.per_step_grad_norms(net, split.X_test, split.y_test)
    record = bptt_lib.train(net, split, epochs=EPOCHS, seed=seed)
    return record, norms
