# grad_norms listed from t = T down to t = 1.
# expect test_h32: 0 | They are in reverse order
# expect test_h128: 0 | grad_norms[t − 1] is ‖∂L/∂h_t‖
# hint test_h32: reversed
# hint test_h128: reversed
def run(hidden_size, seed=0):
    torch.manual_seed(seed)
    model = bptt_lib.RememberFirstRNN(8, hidden_size)
    data = bptt_lib.RememberFirstSplit.make(T, n_train=N, n_test=N, seed=seed)
    g = bptt_lib.per_step_grad_norms(model, data.X_test, data.y_test).numpy()
    return bptt_lib.train(model, data, epochs=EPOCHS, seed=seed), g[::-1].copy()
