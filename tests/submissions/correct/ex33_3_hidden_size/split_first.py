# The split made before seeding torch (it has its own generator), everything else as specified;
# numpy and random seeded too, for good measure.
import random


def run(hidden_size, seed=0):
    data = bptt_lib.RememberFirstSplit.make(T, n_train=N, n_test=N, seed=seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    model = bptt_lib.RememberFirstRNN(8, hidden_size)
    norms = bptt_lib.per_step_grad_norms(model, data.X_test, data.y_test).detach().clone()
    return bptt_lib.train(model, data, epochs=EPOCHS, seed=seed), norms
