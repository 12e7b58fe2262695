# (grad_norms, record) instead of (record, grad_norms): only the structure cell tests the order.
# expect test_structure: 0 | the contract's order is (record, grad_norms) — swap them
# hint test_structure: swapped
def run(hidden_size, seed=0):
    torch.manual_seed(seed)
    model = bptt_lib.RememberFirstRNN(8, hidden_size)
    data = bptt_lib.RememberFirstSplit.make(T, n_train=N, n_test=N, seed=seed)
    g = bptt_lib.per_step_grad_norms(model, data.X_test, data.y_test).numpy()
    return g, bptt_lib.train(model, data, epochs=EPOCHS, seed=seed)
