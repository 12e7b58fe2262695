# NumPy seeded instead of torch: the model's initialisation is not reproducible. The h cells
# say only what differs (no hint: the grader cannot tell how the model was made).
# expect test_deterministic: 0 | two runs with the same seed differ
# expect test_h32: 0 | grad_norms differ from the reference protocol's norms at initialisation
# expect test_h128: 0 | grad_norms differ from the reference protocol's norms at initialisation
def run(hidden_size, seed=0):
    np.random.seed(seed)
    model = bptt_lib.RememberFirstRNN(8, hidden_size)
    data = bptt_lib.RememberFirstSplit.make(T, n_train=N, n_test=N, seed=seed)
    g = bptt_lib.per_step_grad_norms(model, data.X_test, data.y_test).numpy()
    return bptt_lib.train(model, data, epochs=EPOCHS, seed=seed), g
