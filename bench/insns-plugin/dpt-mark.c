/* Guest helper of bench/insns: executes the marker no-op the instruction-counting plugin
 * (insncount.c) recognises by its bytes, so the host's count is taken at this point. */
int main(void)
{
	__asm__ volatile(".byte 0x0f, 0x1f, 0x80, 0x31, 0x54, 0x50, 0x44"); /* nopl 0x44505431(%rax) */
	return 0;
}
