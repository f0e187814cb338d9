// SPDX-License-Identifier: GPL-2.0
/*
 * pmem: a read-only character device (/dev/pmem) over physical memory, for machines whose
 * kernel has no usable /proc/kcore. A read at offset X returns physical memory at X.
 *
 * Deliberately small and auditable:
 *  - only pages inside "System RAM" (page_is_ram) that are online are read; anything else
 *    (holes, MMIO, offline or unmapped pages) fails with -EIO, so a reader can record the page
 *    as unreadable and go on;
 *  - copies are machine-check safe (copy_mc_to_kernel) and fault safe (the page's direct-map
 *    entry is checked first), so a poisoned page gives -EIO instead of a crash;
 *  - there is no write, mmap or ioctl; opening needs CAP_SYS_RAWIO and read-only access;
 *  - unloading removes the device.
 * A read returns what it copied before the first unreadable page (a short read); a read that
 * starts on an unreadable page returns -EIO.
 */
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/ioport.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <linux/version.h>
#ifdef CONFIG_X86
#include <asm/pgtable_types.h>
#endif

static int pmem_open(struct inode *inode, struct file *file)
{
	if (!capable(CAP_SYS_RAWIO))
		return -EPERM;
	if (file->f_mode & FMODE_WRITE)
		return -EPERM;
	/* Physical addresses above 2^63 are not offsets a loff_t can hold otherwise. */
	file->f_mode |= FMODE_UNSIGNED_OFFSET;
	return 0;
}

/* Whether the kernel's direct mapping of @addr is present (pages can be unmapped from it). */
static bool pmem_mapped(const void *addr)
{
#ifdef CONFIG_X86
	unsigned int level;
	pte_t *pte = lookup_address((unsigned long)addr, &level);

	return pte && pte_present(*pte);
#else
	return true;
#endif
}

/* Copies @len bytes of physical page @pfn from @off into @dst; 0 or -EIO. */
static int pmem_copy_page(void *dst, unsigned long pfn, size_t off, size_t len)
{
	struct page *page;
	void *src;
	int ret = 0;

	if (!page_is_ram(pfn))
		return -EIO;
	page = pfn_to_online_page(pfn);
	if (!page)
		return -EIO;
	src = kmap_local_page(page);
	if (!pmem_mapped(src)) {
		ret = -EIO;
	} else {
#ifdef CONFIG_ARCH_HAS_COPY_MC
		if (copy_mc_to_kernel(dst, src + off, len))
			ret = -EIO;
#else
		if (copy_from_kernel_nofault(dst, src + off, len))
			ret = -EIO;
#endif
	}
	kunmap_local(src);
	return ret;
}

static ssize_t pmem_read(struct file *file, char __user *buf, size_t count, loff_t *ppos)
{
	u64 pos = (u64)*ppos;
	size_t done = 0;
	void *bounce;
	int err = 0;

	bounce = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (!bounce)
		return -ENOMEM;
	while (done < count) {
		unsigned long pfn = pos >> PAGE_SHIFT;
		size_t off = pos & ~PAGE_MASK;
		size_t n = min_t(size_t, count - done, PAGE_SIZE - off);

		if (fatal_signal_pending(current)) {
			err = -EINTR;
			break;
		}
		err = pmem_copy_page(bounce, pfn, off, n);
		if (err)
			break;
		if (copy_to_user(buf + done, bounce, n)) {
			err = -EFAULT;
			break;
		}
		done += n;
		pos += n;
		cond_resched();
	}
	kfree(bounce);
	if (done == 0 && err)
		return err;
	*ppos = pos;
	return done;
}

static loff_t pmem_llseek(struct file *file, loff_t offset, int whence)
{
	switch (whence) {
	case SEEK_SET:
		file->f_pos = offset;
		return file->f_pos;
	case SEEK_CUR:
		file->f_pos += offset;
		return file->f_pos;
	default:
		return -EINVAL;
	}
}

static const struct file_operations pmem_fops = {
	.owner = THIS_MODULE,
	.open = pmem_open,
	.read = pmem_read,
	.llseek = pmem_llseek,
};

static struct miscdevice pmem_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "pmem",
	.fops = &pmem_fops,
	.mode = 0400,
};

static int __init pmem_init(void)
{
	int ret = misc_register(&pmem_dev);

	if (ret)
		pr_err("pmem: cannot register /dev/pmem: %d\n", ret);
	else
		pr_info("pmem: /dev/pmem ready (read-only physical memory, System RAM only)\n");
	return ret;
}

static void __exit pmem_exit(void)
{
	misc_deregister(&pmem_dev);
	pr_info("pmem: /dev/pmem removed\n");
}

module_init(pmem_init);
module_exit(pmem_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Read-only physical memory device for pmem acquisition");
MODULE_VERSION("0.1.0");
