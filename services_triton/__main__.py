import sys

from services_triton.server import main

sys.exit(main())
