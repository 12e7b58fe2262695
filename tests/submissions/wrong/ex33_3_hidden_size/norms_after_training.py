# ‖∂L/∂h_t‖ measured after training instead of at initialisation.
# expect test_h32: 0 | These are the norms after training: measure at initialisation
# expect test_h128: 0 | These are the norms after training
# hint test_h32: after_training
# hint test_h128: after_training
def run(hidden_size, seed=0):
    torch.manual_seed(seed)
    model = bptt_lib.RememberFirstRNN(8, hidden_size)
    data = bptt_lib.RememberFirstSplit.make(T, n_train=N, n_test=N, seed=seed)
    record = bptt_lib.train(model, data, epochs=EPOCHS, seed=seed)
    return record, bptt_lib.per_step_grad_norms(model, data.X_test, data.y_test).numpy()
