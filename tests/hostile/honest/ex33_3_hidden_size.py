# The honest classmate's 33.3, written from the student notebook: full marks.
def run(hidden_size, seed=0):
    torch.manual_seed(seed)
    model = bptt_lib.RememberFirstRNN(8, hidden_size)
    data = bptt_lib.RememberFirstSplit.make(T, n_train=N, n_test=N, seed=seed)
    grad_norms = bptt_lib.per_step_grad_norms(model, data.X_test, data.y_test)
    record = bptt_lib.train(model, data, epochs=EPOCHS, seed=seed)
    return record, grad_norms
