import sys

from services.marketdata.service import main

sys.exit(main())
