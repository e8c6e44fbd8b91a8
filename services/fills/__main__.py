import sys

from services.fills.service import main

sys.exit(main())
