/* exit_only: a program that only exits. bench/programs.py times it plain and under the
 * checker: the difference is the checker's fixed start-up and exit cost. */
int main(void)
{
    return 0;
}
