// libseccomp, as installed by Debian's libseccomp-dev.
#include <seccomp.h>
