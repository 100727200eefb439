# Job launchers used by the recipe stages (Kaldi convention):
#   $train_cmd  data preparation and feature jobs     $cuda_cmd  training and decoding on GPUs
# Local machine (default):
export train_cmd="run.pl"
export cuda_cmd="run.pl"
export decode_cmd="run.pl"
# Slurm cluster: set MSLAM_CMD_BACKEND=slurm (or edit here). Extra sbatch arguments
# (account, partition, ...) go into conf/slurm.conf, one per line.
if [ "${MSLAM_CMD_BACKEND:-local}" = slurm ]; then
    slurm_conf=""
    [ -f conf/slurm.conf ] && slurm_conf="--config conf/slurm.conf"
    export train_cmd="slurm.pl $slurm_conf"
    export cuda_cmd="slurm.pl $slurm_conf"   # the templates add --gpu <their --ngpu>
    export decode_cmd="slurm.pl $slurm_conf"
fi
