// lamina: the command line. `lamina --help` lists the commands.
import LaminaCommandLine

runCommandLine(Lamina.self)
