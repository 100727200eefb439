# --ngpu of both recipe templates (sourced by finetune.sh and pretrain.sh after parse_options.sh):
# a number of GPUs per training job, or `auto` (the default): every GPU of this machine, and none
# (the CPU) on a machine without one. resolve_ngpu turns it into a number and sets $device (cpu or
# cuda); the templates call it only before a stage that trains or decodes, so that data stages run
# anywhere with any --ngpu.
ngpu_help="--ngpu auto (every GPU of this machine, the CPU if none) or --ngpu N (0: the CPU)"

# The flag's form, checked when the recipe starts.
check_ngpu() {
    case $ngpu in
        auto|[0-9]|[0-9][0-9]) ;;
        *) echo "$0: --ngpu '$ngpu' is not a number of GPUs; use $ngpu_help" >&2; exit 1 ;;
    esac
}

resolve_ngpu() {
    local backend=${MSLAM_CMD_BACKEND:-local} have
    case $ngpu in
        auto)
            if [ "$backend" != local ]; then
                echo "$0: --ngpu auto counts the GPUs of this machine, but the jobs run on other machines" \
                     "(MSLAM_CMD_BACKEND=$backend); give the GPUs per job: --ngpu N (0: the CPU)" >&2
                exit 1
            fi
            ngpu=$(local_gpu_count)
            echo "--ngpu auto: $ngpu GPU(s) on this machine$([ "$ngpu" -gt 0 ] || echo ", training on the CPU")" ;;
        *)
            # Jobs of a local launcher run here: a count this machine cannot meet fails now, naming the
            # flag, rather than deep inside the training job.
            if [ "$ngpu" -gt 0 ] && [ "$backend" = local ]; then
                have=$(local_gpu_count)
                if [ "$ngpu" -gt "$have" ]; then
                    echo "$0: --ngpu $ngpu, but this machine has $have usable GPU(s); use $ngpu_help" >&2
                    exit 1
                fi
            fi ;;
    esac
    device=cpu; [ "$ngpu" -eq 0 ] || device=cuda
}

local_gpu_count() {
    # Without NVIDIA (or AMD ROCm) device nodes there is no GPU, and no need to start Python to be told so.
    if ! compgen -G "/dev/nvidia[0-9]*" > /dev/null && [ ! -e /dev/kfd ]; then
        echo 0
        return
    fi
    python -c 'import torch; print(torch.cuda.device_count())'
}
