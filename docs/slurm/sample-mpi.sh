#!/bin/bash
# One MPI job over 4 nodes (a langevin built with --features mpi, see docs/DISTRIBUTED.md):
# the ranks split the particles, rank 0 writes all.npy and all.json.
#SBATCH --job-name=langevin-mpi
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=32
#SBATCH --time=01:00:00
set -euo pipefail
srun --mpi=pmix langevin --threads "$SLURM_CPUS_PER_TASK" sample --target many-well:dim=32 \
  --sampler mala --particles 100000000 --seed 7 --out all.npy --report all.json -q
