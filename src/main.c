/*
 * main.c - the srv executable: srv_cli_main() (cli.c) in the libpython it
 * links, until it hands the process over (handover.h).
 */
#include "srv/cli.h"

int main(int argc, char **argv)
{
    return srv_cli_main(argc, argv, 0);
}
