# Ground truth for the analysis checks, recorded by the rig guest (busybox sh, run by
# run-in-vm.sh --pre) just before the acquisition: what the guest itself reports through /proc,
# with a process, a module, a socket and a log line of known content to find in the image.
mkdir -p /out/truth
echo "pmem-rig-marker: ground truth recorded before acquisition" > /dev/kmsg
# The newest record of the kernel's ring buffer stays unfinalized until the next one is
# written, and Volatility reads finalized records only: a second line finalizes the marker.
echo "pmem-rig-marker-end" > /dev/kmsg
[ -f /rig/bin/fuse.ko ] && insmod /rig/bin/fuse.ko 2> /out/truth/insmod.err
PMEM_RIG_SECRET=rig-env-value-42 sleep 1000 &
echo $! > /out/truth/sleep.pid
nc -l -p 7777 > /dev/null 2>&1 &
echo $! > /out/truth/nc.pid
sleep 0.5
for p in /proc/[0-9]*; do cat "$p/stat"; echo; done > /out/truth/ps.txt 2> /dev/null
cat /proc/modules > /out/truth/modules.txt
cat /proc/mounts > /out/truth/mounts.txt
cat /proc/net/tcp /proc/net/tcp6 > /out/truth/tcp.txt 2>&1
S=$(cat /out/truth/sleep.pid)
cat /proc/$S/maps > /out/truth/sleep.maps
tr '\0' '\n' < /proc/$S/environ > /out/truth/sleep.environ
tr '\0' ' ' < /proc/$S/cmdline > /out/truth/sleep.cmdline
dmesg > /out/truth/dmesg.txt
cat /proc/iomem > /out/truth/iomem.txt
