"""AWS building blocks and topologies. One block a file; each is a ComponentResource."""
