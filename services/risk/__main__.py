import sys

from services.risk.service import main

sys.exit(main())
