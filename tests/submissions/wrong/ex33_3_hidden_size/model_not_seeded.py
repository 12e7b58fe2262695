# torch.manual_seed forgotten: the model's initialisation differs from run to run.
# expect test_deterministic: 0 | two runs with the same seed differ
# expect test_h32: 0 | grad_norms differ from the reference protocol
# expect test_h128: 0 | grad_norms differ from the reference protocol
def run(hidden_size, seed=0):
    model = bptt_lib.RememberFirstRNN(8, hidden_size)
    data = bptt_lib.RememberFirstSplit.make(T, n_train=N, n_test=N, seed=seed)
    g = bptt_lib.per_step_grad_norms(model, data.X_test, data.y_test).numpy()
    return bptt_lib.train(model, data, epochs=EPOCHS, seed=seed), g
