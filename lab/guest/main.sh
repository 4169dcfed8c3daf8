# Run by /init as `sh -e`: loads nvme, finds the disks, runs the host's chosen guest script.
. /lab/lab.sh
. /lab/run.env
lab_load_nvme
lab_find_disks
. /lab/guest-script
