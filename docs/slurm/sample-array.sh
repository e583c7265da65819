#!/bin/bash
# A Slurm job array: 64 tasks, each one shard of one run of 1,000,000 MALA chains; a last job
# merges them once every task has finished:
#   jid=$(sbatch --parsable docs/slurm/sample-array.sh)
#   sbatch --dependency=afterok:$jid --wrap 'langevin merge shards/shard-*.npy --reports shards/shard-*.json --out all.npy --report all.json'
#SBATCH --job-name=langevin-shards
#SBATCH --array=0-63
#SBATCH --cpus-per-task=8
#SBATCH --time=01:00:00
set -euo pipefail
mkdir -p shards
k=$(printf '%02d' "$SLURM_ARRAY_TASK_ID")
# Every task runs the same flags and seed; only --shard, --out and --report differ.
langevin --threads "$SLURM_CPUS_PER_TASK" sample --target many-well:dim=32 --sampler mala \
  --particles 1000000 --seed 7 --shard "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT" \
  --out "shards/shard-$k.npy" --report "shards/shard-$k.json" -q
