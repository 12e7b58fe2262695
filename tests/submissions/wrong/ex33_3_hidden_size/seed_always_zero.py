# Everything seeded with 0, whatever the seed argument says.
# expect test_deterministic: 0 | runs with different seeds are identical
# expect test_h32: 0 | These are the norms of seed 0
# expect test_h128: 0 | run(hidden_size, seed) must use its seed
# hint test_h32: seed_ignored
# hint test_h128: seed_ignored
def run(hidden_size, seed=0):
    torch.manual_seed(0)
    model = bptt_lib.RememberFirstRNN(8, hidden_size)
    data = bptt_lib.RememberFirstSplit.make(T, n_train=N, n_test=N, seed=0)
    g = bptt_lib.per_step_grad_norms(model, data.X_test, data.y_test).numpy()
    return bptt_lib.train(model, data, epochs=EPOCHS, seed=0), g
