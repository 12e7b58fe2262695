# One split, made once with seed 0, reused by every run; the model is seeded per run.
# expect test_h32: 0 | the norms on the split of seed 0
# expect test_h128: 0 | make the split with the run's seed
# hint test_h32: split_reused
# hint test_h128: split_reused
DATA = bptt_lib.RememberFirstSplit.make(T, n_train=N, n_test=N, seed=0)


def run(hidden_size, seed=0):
    torch.manual_seed(seed)
    model = bptt_lib.RememberFirstRNN(8, hidden_size)
    g = bptt_lib.per_step_grad_norms(model, DATA.X_test, DATA.y_test).numpy()
    return bptt_lib.train(model, DATA, epochs=EPOCHS, seed=seed), g
