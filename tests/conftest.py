import torch

# small models run fastest single-threaded on these shared 2-core machines
torch.set_num_threads(1)
